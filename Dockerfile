# modgate gateway image, used by compose.yaml. It asks an OPA server (policy.opa_url) and
# carries no OPA of its own.

# The wheel: the gateway package with its migrations and bundled policies inside it
# (setup.py maps the top-level migrations/ and policies/ into gateway/_bundled/).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gateway ./gateway
COPY migrations ./migrations
COPY policies ./policies
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# A plain (non-editable) install: the dependencies exactly as locked, hashes checked,
# then the wheel without resolving anything again. No source tree in the image.
FROM python:3.11-slim
COPY requirements.lock /tmp/requirements.lock
COPY --from=wheel /dist /tmp/dist
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
    && rm -rf /tmp/requirements.lock /tmp/dist \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/modgate modgate

# The working directory is modgate's own, so the default SQLite file could be written.
WORKDIR /var/lib/modgate
USER 10001
ENV MODGATE_SERVER_HOST=0.0.0.0
EXPOSE 8443
ENTRYPOINT ["modgate"]
CMD ["serve"]
