FROM python:3.11-slim
ENV UV_PYTHON_DOWNLOADS=never PYTHONUNBUFFERED=1
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock README.md ./
COPY service ./service
COPY migrations ./migrations
COPY seed ./seed
RUN uv sync --frozen --no-dev --compile-bytecode
EXPOSE 8000
CMD ["/app/.venv/bin/contentapi", "serve", "--host", "0.0.0.0", "--port", "8000"]
