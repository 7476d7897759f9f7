# One image for every process (web, worker, beat, flower, migrate); docker-compose.yml builds it
# once and picks each service's command. Only requirements.txt is installed: the embedded servers,
# mail sink and test tools of make run / make test (requirements-local.txt, -dev.txt) stay out.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home --uid 10001 shop && mkdir -p /app/var && chown -R shop /app/var
USER shop
EXPOSE 8000 5555
# gunicorn.conf.py: uvicorn workers, FORWARDED_ALLOW_IPS, PROMETHEUS_MULTIPROC_DIR emptied at start.
CMD ["gunicorn", "web.app:app", "--config", "gunicorn.conf.py"]
