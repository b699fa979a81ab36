# digitserve image: the FastAPI service with the shipped model baked in.
#
#   docker build --target runtime -t digitserve:cpu .                      # the service, CPU (default)
#   docker build --target runtime -t digitserve:gpu \
#       --build-arg TENSORFLOW_REQUIREMENT='tensorflow[and-cuda]==2.21.0' .  # the service, NVIDIA GPU
#   docker build --target train -t digitserve-train:cpu .                   # the training CLI
#
# Stages: `build` installs every wheel into /opt/venv (pip's caches and the sources stay there);
# `runtime` copies only that venv and the model; `train` adds the training extras for the compose
# `train` service. The serving stages come first because the classic builder (docker-compose v1's
# default) builds every stage up to its --target, and BuildKit skips unused ones anyway.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
# Every stage carries this label, so the e2e tests can prune the images that later builds superseded.
LABEL io.digitserve.image="digitserve"
# CPU TensorFlow by default; `tensorflow[and-cuda]==2.21.0` for the GPU image (CUDA/cuDNN from wheels,
# so the host needs only the NVIDIA driver and the container toolkit).
ARG TENSORFLOW_REQUIREMENT=tensorflow-cpu==2.21.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, in their own layer: editing the code does not re-download TensorFlow.
COPY pyproject.toml ./
COPY deploy/docker/requirements.py deploy/docker/requirements.py
RUN python deploy/docker/requirements.py --tensorflow "${TENSORFLOW_REQUIREMENT}" > requirements.txt \
    && /opt/venv/bin/pip install --requirement requirements.txt
# The project itself, as a wheel; --no-deps because its TensorFlow line names the CPU flavour.
COPY README.md ./
COPY digits ./digits
COPY app ./app
COPY training ./training
COPY digitserve ./digitserve
RUN /opt/venv/bin/pip install --no-deps . \
    && rm -rf build ./*.egg-info
# TensorFlow's C++ headers (~290 MB) only serve to compile custom ops.
RUN rm -rf /opt/venv/lib/python3*/site-packages/tensorflow/include

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
LABEL io.digitserve.image="digitserve"
# A fixed, unprivileged uid/gid so that volume permissions and Kubernetes' runAsUser agree.
RUN groupadd --system --gid 10001 digitserve \
    && useradd --system --uid 10001 --gid digitserve --home-dir /home/digitserve --create-home \
        --shell /usr/sbin/nologin digitserve
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /opt/digitserve

# ---------------------------------------------------------------------------------------------------
FROM base AS runtime
COPY --from=build /opt/venv /opt/venv
# The shipped model; a volume mounted elsewhere plus DIGITSERVE_MODEL_DIR serves another one.
COPY models/ /opt/digitserve/models/
ENV DIGITSERVE_MODEL_DIR=/opt/digitserve/models/digits
USER 10001:10001
EXPOSE 8000
# No curl in a slim image: the venv's Python asks /healthz. start-period covers TensorFlow's import and
# the model's warm-up, during which failed checks do not count.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# `python -m app` runs uvicorn with the options built from the settings (app/server.py): the
# connection limits (head size and time, body pace, keep-alive, connections at once) and a 20 s
# drain, the same as `make serve` and the tests. Exec form: Python is PID 1 and gets SIGTERM from
# `docker stop` itself; uvicorn then stops accepting, lets in-flight requests finish for up to 20 s,
# and runs the lifespan shutdown; compose and Kubernetes give it 30 s before SIGKILL.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]

# ---------------------------------------------------------------------------------------------------
FROM build AS build-train
ARG TENSORFLOW_REQUIREMENT=tensorflow-cpu==2.21.0
RUN python deploy/docker/requirements.py --tensorflow "${TENSORFLOW_REQUIREMENT}" --extra train \
        > requirements-train.txt \
    && /opt/venv/bin/pip install --requirement requirements-train.txt

# ---------------------------------------------------------------------------------------------------
# `python -m training.run` with the data directory mounted at /data and ./models at /opt/digitserve/models.
FROM base AS train
COPY --from=build-train /opt/venv /opt/venv
USER 10001:10001
ENTRYPOINT ["python", "-m", "training.run"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------------
# `docker build .` without --target gives the service, not the training image.
FROM runtime
