# Red's image: the build phase of the same deploy (installs and configures, starts nothing).
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 -t red .
# On vast, set the on-start command to: bash /opt/red/onstart.sh
# Settings for the image: --build-arg RED_DATA="--data python_version=3.11 --data visomaster_ref=main"
ARG BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates
COPY . /opt/red
WORKDIR /opt/red
RUN python3 -m venv venv && venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
ARG RED_DATA
RUN venv/bin/pyinfra -y @local deploy.py --data phase=build $RED_DATA
CMD ["/opt/red/onstart.sh", "--foreground"]
