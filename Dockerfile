# One image for the harness service, the router and the Toxiproxy-compatible server; the
# default command is the game-day service (docker-compose and deploy/k8s pick the others).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY harness ./harness
COPY router ./router
COPY deploy ./deploy
COPY scenarios ./scenarios
RUN pip install --no-cache-dir . \
    && groupadd --system --gid 10001 harness \
    && useradd --system --uid 10001 --gid harness --home-dir /data --no-create-home harness \
    && install -d -o harness -g harness /data
# HARNESS_PROJECT_DIR: scenarios and deploy/ are read from here; MPLCONFIGDIR: matplotlib
# (report plots) needs a writable cache, and the root file system may be read-only.
ENV HARNESS_PROJECT_DIR=/app \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
EXPOSE 8090
CMD ["harness", "serve", "--host", "0.0.0.0", "--port", "8090", "--data-dir", "/data"]
