"""Apache Kafka in KRaft mode (one node: broker and controller), jars from Maven.

Started with the JVM directly on the classpath install.py resolved: `StorageTool format`
once, then `kafka.Kafka server.properties` with a small heap. Ready when kcat gets
metadata from it.
"""

from __future__ import annotations

import base64
import subprocess
import uuid

from .base import Server
from .install import InfraError, find_binary, kafka_classpath

__all__ = ["KafkaServer", "new_cluster_id"]

_LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
"""


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's own Uuid.randomUuid() makes them.

    The id is the URL-safe base64 of a random UUID, and one in 64 of those starts with '-',
    which `StorageTool format -t <id>` then reads as an option ("expected one argument"):
    Kafka draws again in that case, and so does this.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaServer(Server):
    kind = "kafka"
    port_names = ("main", "controller")
    start_timeout = 120.0
    stop_timeout = 30.0
    heap = "512m"

    @property
    def url(self) -> str:
        return f"kafka://{self.address}"

    @property
    def bootstrap_servers(self) -> str:
        return self.address

    @property
    def properties_path(self):
        return self.root / "server.properties"

    def _properties(self) -> dict[str, str]:
        controller = f"{self.host}:{self.ports['controller']}"
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{controller}",
            "listeners": f"PLAINTEXT://{self.address},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.address}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",  # the default 50 makes the first group join slow
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",  # as in production: topics are created on purpose
            "delete.topic.enable": "true",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }

    def _java(self, main_class: str, *args: str, heap: str) -> list[str]:
        classpath = kafka_classpath()
        if classpath is None:
            raise InfraError("kafka jars are not installed (python -m tests.infra install --only kafka)")
        return [
            find_binary("java") or "java", f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1" if main_class != "kafka.Kafka" else "-XX:+UseStringDeduplication",
            "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.root / 'logs'}",
            "-cp", classpath, main_class, *args,
        ]

    def prepare(self) -> None:
        self.properties_path.write_text("".join(f"{k}={v}\n" for k, v in self._properties().items()))
        (self.root / "log4j.properties").write_text(_LOG4J)
        self.run_tool(self._java("kafka.tools.StorageTool", "format", "-t", new_cluster_id(),
                                 "-c", str(self.properties_path), "--ignore-formatted", heap="256m"),
                      what="kafka storage format")

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.properties_path), heap=self.heap)

    def not_ready_reason(self) -> str | None:
        kcat = find_binary("kcat")
        if kcat is None:
            return "kcat is not installed"
        try:
            proc = subprocess.run([kcat, "-L", "-b", self.address, "-m", "3"], capture_output=True, text=True,
                                  timeout=10, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return "kcat -L timed out"
        if proc.returncode == 0 and "1 brokers" in proc.stdout:
            return None
        return f"kcat -L: {(proc.stderr or proc.stdout).strip()[-300:]}"

    def kcat(self, *args: str, timeout: float = 60) -> str:
        """Run kcat against this broker: the independent client for tests."""
        return self.run_tool([find_binary("kcat") or "kcat", "-b", self.address, *args], timeout=timeout,
                             what="kcat")

    def endpoints(self) -> dict:
        return {**super().endpoints(), "bootstrap_servers": self.bootstrap_servers}
