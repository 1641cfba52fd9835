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

# Every Debian package the tasks install (tasks/packages.py), chosen by the settings alone: no variant's
# argument changes them, so every variant shares this layer, and a change to a task installs none again.
# policy-rc.d (executable): no package install starts a service (supervisor runs them).
FROM base AS packages
COPY files/system/policy-rc.d /usr/sbin/policy-rc.d
COPY group_data/all.py group_data/
COPY tasks/settings.py tasks/packages.py tasks/
ARG RED_DATA
# hadolint ignore=SC2086
RUN python3 -m tasks.packages apt $RED_DATA

# The app's checkout at visomaster_ref and its environment (tasks/app_stage.py, with the deploy's own
# dependency script), shared by every variant: a change to a task installs none of its packages again.
FROM packages AS app
COPY files/visomaster/red-visomaster-deps files/visomaster/red-import-check /usr/local/bin/
COPY tasks/models_stage.py tasks/app_stage.py tasks/
ARG RED_DATA
# hadolint ignore=SC2086
RUN PIP_NO_CACHE_DIR=1 python3 -m tasks.app_stage $RED_DATA

# The models (MODELS_AT=build) in a layer of their own, before everything that changes more often: this
# stage reads only the fetcher and the settings that name the list (tasks/models_stage.py), so a change
# to a task fetches nothing again. With another MODELS_AT it adds nothing.
FROM app AS models
COPY files/models/red-models /usr/local/bin/red-models
ARG MODELS_AT=start
ARG RED_DATA
# hadolint ignore=SC2086
RUN python3 -m tasks.models_stage --data "models_at=${MODELS_AT}" $RED_DATA

FROM models
ARG ACCESS=portal
ARG RED_DATA
# Red's own pip environments (Jupyter's; the portal's with ACCESS=portal), keyed by their pins
# hadolint ignore=SC2086
RUN PIP_NO_CACHE_DIR=1 python3 -m tasks.packages environments --data "access=${ACCESS}" $RED_DATA
# the controller's packages next: an edit to a task or to the README does not reinstall them
COPY requirements.txt ./
RUN python3 -m venv venv && venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
# only what .dockerignore lets through (what Red ships)
COPY . ./
ARG MODELS_AT=start
# RED_DATA is split into its --data words on purpose (the deploy checks each setting it gives)
# hadolint ignore=SC2086
RUN venv/bin/pyinfra -y @local deploy.py --data phase=build --data "access=${ACCESS}" \
        --data "models_at=${MODELS_AT}" $RED_DATA \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /root/.cache/pip
CMD ["/opt/red/onstart.sh", "--foreground"]
