# spanlake: OTLP/gRPC on 4317, OTLP/HTTP + API on 4318, data in /data.
FROM python:3.11-slim AS build
# A C compiler for the decoder's compiled fast path (spanlake/ingest/_otlp_native.c); the
# runtime image gets the built wheel only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY spanlake ./spanlake
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[lake]'

FROM python:3.11-slim
RUN groupadd --system spanlake && useradd --system --gid spanlake --home-dir /data --shell /usr/sbin/nologin spanlake \
    && mkdir -p /data && chown spanlake:spanlake /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'spanlake[lake]' && rm -rf /wheels
USER spanlake
WORKDIR /data
# The store and the ingest log: acknowledged spans not loaded yet live only in /data/ingest-log,
# so mount a persistent volume here, one per container (a second server refuses a used log).
VOLUME ["/data"]
EXPOSE 4317 4318
ENV SPANLAKE_DATA=/data \
    SPANLAKE_HOST=0.0.0.0
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=2)"
ENTRYPOINT ["spanlake"]
CMD ["serve"]
