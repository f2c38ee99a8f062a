# syntax=docker/dockerfile:1
# vnf-operator image: `docker build -t vnf-operator:dev .` (make image).
#
# builder: builds wheels of the operator and of its pinned dependencies (pyproject.toml).
# final:   installs those wheels offline into a clean python:3.11-slim, runs as uid 10001.
#          No compiler, no source tree, no tests: only the installed package.

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ ./operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
# The repository URL, passed by the release build (--build-arg SOURCE=...).
ARG SOURCE=""
LABEL org.opencontainers.image.title="vnf-operator" \
      org.opencontainers.image.description="Kubernetes operator that configures virtualized network functions from declarative provider dictionaries" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.vendor="vnf-operator authors" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The wheels are bind-mounted from the builder stage, so they never become a layer of this image.
# pip, setuptools and wheel leave afterwards: nothing installs anything at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/vnf_operator-*.whl \
    && pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 vnf \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin vnf
USER 10001:10001
WORKDIR /tmp
# 8080: kopf's liveness endpoint (/healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["kopf", "run", "-m", "vnf_operator.controller.main"]
CMD ["--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
