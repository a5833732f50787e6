# One image for the router and the harness (the compose file picks the command).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY harness ./harness
COPY router ./router
COPY deploy ./deploy
COPY scenarios ./scenarios
RUN pip install --no-cache-dir .
ENV HARNESS_PROJECT_DIR=/app
CMD ["harness", "--help"]
