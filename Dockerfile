# modgate gateway image, used by compose.yaml. It asks an OPA server (policy.opa_url) and
# carries no OPA of its own.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY gateway ./gateway
COPY migrations ./migrations
# Editable install: the migrations are found next to the package (gateway/audit/migrate.py
# looks two directories up), which a plain `pip install .` into site-packages would lose.
RUN pip install --no-cache-dir -e . \
    && useradd --system --uid 10001 --home-dir /app modgate

USER 10001
ENV MODGATE_SERVER_HOST=0.0.0.0
EXPOSE 8443
ENTRYPOINT ["modgate"]
CMD ["serve"]
