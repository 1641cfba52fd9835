# Red's image: the build phase of the same deploy (installs and configures, starts nothing).
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 -t red .
# On vast, set the on-start command to: bash /opt/red/onstart.sh
# Settings for the image: --build-arg RED_DATA="--data python_version=3.11 --data visomaster_ref=main"
# (secrets never: they would stay in the image's history; the instance's environment gives them).
ARG BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
# git: the build resolves visomaster_ref before its first operation
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates git \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/red
# the controller's packages first: an edit to a task or to the README does not reinstall them
COPY requirements.txt ./
RUN python3 -m venv venv && venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
# only what .dockerignore lets through (what Red ships)
COPY . ./
ARG RED_DATA
RUN venv/bin/pyinfra -y @local deploy.py --data phase=build $RED_DATA \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /root/.cache/pip
CMD ["/opt/red/onstart.sh", "--foreground"]
