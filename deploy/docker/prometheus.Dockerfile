# Prometheus for the compose monitoring profile: Debian's package (no
# registry image needed), configured from deploy/prometheus: the scrape
# template rendered for the compose network (the proxy's admin port and
# both bridges, every 15 s, matching the Grafana data source's
# timeInterval) and the alert rules, both checked with promtool at build.
# Build context: the repository root.
ARG RUNTIME_BASE=debian:bookworm-slim
FROM ${RUNTIME_BASE}
# No service is started by the package's maintainer scripts in a build.
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
COPY deploy/prometheus/rules.yml /etc/prometheus/rules.yml
COPY deploy/prometheus/scrape.yml.tmpl /tmp/scrape.yml.tmpl
RUN sed -e 's/{{\.Interval}}/15s/g' \
        -e 's/{{\.ProxyAdmin}}/proxy:9765/' \
        -e 's/{{\.Primary}}/bridge-primary:8765/' \
        -e 's/{{\.Shadow}}/bridge-shadow:8766/' /tmp/scrape.yml.tmpl >/etc/prometheus/prometheus.yml \
 && printf '\nrule_files:\n  - /etc/prometheus/rules.yml\n' >>/etc/prometheus/prometheus.yml \
 && rm /tmp/scrape.yml.tmpl \
 && ! grep -q '{{' /etc/prometheus/prometheus.yml \
 && promtool check config /etc/prometheus/prometheus.yml
USER prometheus
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
    CMD ["/usr/bin/promtool", "check", "ready", "--url", "http://127.0.0.1:9090"]
ENTRYPOINT ["/usr/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml", \
            "--storage.tsdb.path=/var/lib/prometheus/metrics2", "--web.listen-address=0.0.0.0:9090"]
