# One image for every mesh service; compose and Kubernetes pick the service with
# `python -m services.<name>`.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The whole build context at once (.dockerignore keeps it small): a new service needs no Dockerfile edit.
COPY . .
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /srv protomesh

# Run outside the source tree so imports come from the installed package, as non-root.
WORKDIR /srv
USER 10001
EXPOSE 50051
CMD ["python", "-c", "raise SystemExit('choose a service: python -m services.<name>')"]
