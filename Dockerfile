# Red's image: the build phase of the same deploy (installs and configures, starts nothing).
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 -t red .
# On vast, set the on-start command to: bash /opt/red/onstart.sh
# A variant (images.yaml): --build-arg ACCESS=portal|direct --build-arg MODELS_AT=build|start|never.
# Other settings: --build-arg RED_DATA="--data python_version=3.11 --data visomaster_ref=main" (they win
# over ACCESS and MODELS_AT; secrets never: they would stay in the image's history; the instance's
# environment gives them).
ARG BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
FROM ${BASE_IMAGE} AS base
ENV DEBIAN_FRONTEND=noninteractive
# git: the build resolves visomaster_ref before its first operation. Versions are not pinned: the base is an
# argument (CUDA's Ubuntu, Debian) and no one version of a package is in all of them.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates git \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/red

# The models (MODELS_AT=build) in a layer of their own, before everything that changes more often: this
# stage reads only the fetcher and the settings that name the list (tasks/models_stage.py), so a change
# to a task fetches nothing again. With another MODELS_AT it adds nothing.
FROM base AS models
COPY files/models/red-models /usr/local/bin/red-models
COPY group_data/all.py group_data/
COPY tasks/settings.py tasks/models_stage.py tasks/
ARG MODELS_AT=start
ARG RED_DATA
# hadolint ignore=SC2086
RUN python3 -m tasks.models_stage --data "models_at=${MODELS_AT}" $RED_DATA

FROM models
# the controller's packages next: an edit to a task or to the README does not reinstall them
COPY requirements.txt ./
RUN python3 -m venv venv && venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
# only what .dockerignore lets through (what Red ships)
COPY . ./
ARG ACCESS=portal
ARG MODELS_AT=start
ARG RED_DATA
# RED_DATA is split into its --data words on purpose (the deploy checks each setting it gives)
# hadolint ignore=SC2086
RUN venv/bin/pyinfra -y @local deploy.py --data phase=build --data "access=${ACCESS}" \
        --data "models_at=${MODELS_AT}" $RED_DATA \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /root/.cache/pip
CMD ["/opt/red/onstart.sh", "--foreground"]
