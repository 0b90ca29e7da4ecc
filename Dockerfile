# hearing-server in a container: the same steps as the README's install, data in the /data volume.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends openssl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /data --shell /usr/sbin/nologin hearing \
    && mkdir -p /data && chown hearing /data

WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY hearing_server ./hearing_server
COPY signaling ./signaling
COPY media ./media
COPY media_worker ./media_worker
COPY recording ./recording
COPY archive ./archive
COPY web_client ./web_client
# gcc only to build media/_sender.c (the forwarding path's last step), then removed
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . \
    && python -I -c "import media._sender" \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

USER hearing
ENV HEARING_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8443
# Media (ICE) is UDP: set HEARING_ICE_PORT_MIN/MAX and publish that range (docs/deploy.md).
# Self-signed certificate, SQLite database and recordings are created under /data on first start;
# the first start prints the admin's one-time password to the container log.
CMD ["hearing-server", "serve", "--host", "0.0.0.0"]
