"""SeaweedFS as the tests' S3 server (Apache-2.0; built from its Go module by install.py).

One `weed server` process runs master, volume, filer and the S3 gateway, all on loopback.
Each of those also serves gRPC on its port + 10000, so ports are chosen in free pairs and the
gRPC ports are passed explicitly as well. Nothing is written outside the server's temp root:
HOME points there (SeaweedFS reads `~/.seaweedfs/*.toml`), logs go to stderr (glog would
write files into the system temp dir), the filer's and gateway's sockets live in the root, and
the per-service gRPC sockets it insists on putting in /tmp are removed by destroy().

Ready when the S3 gateway answers, the default bucket exists and an object write goes through
(retried: the gateway answers seconds before the filer behind it can take either).
"""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

from .base import Server, free_port_pair, http_status
from .install import InfraError, seaweedfs_binary

__all__ = ["SeaweedFSServer"]

GRPC_OFFSET = 10000  # SeaweedFS's convention: gRPC on the HTTP port + 10000
_PROBE_KEY = ".flare-ready-probe"


class SeaweedFSServer(Server):
    kind = "s3"
    port_names = ("main", "master", "volume", "filer")  # main: the S3 gateway
    start_timeout = 90.0
    stop_timeout = 20.0  # it flushes on SIGTERM; seen taking up to ~15 s
    access_key = "flare-test"
    secret_key = "flare-test-secret"
    bucket = "flare"

    @classmethod
    def allocate_ports(cls) -> dict[str, int]:
        return {name: free_port_pair(GRPC_OFFSET) for name in cls.port_names}

    @property
    def url(self) -> str:
        return self.url_for(self.bucket)

    def url_for(self, bucket: str) -> str:
        return f"s3://{self.access_key}:{self.secret_key}@{self.address}/{bucket}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    @property
    def identity_path(self):
        return self.root / "identity.json"

    def environment(self) -> dict[str, str]:
        env = {**super().environment(), "HOME": str(self.root)}
        env.pop("SENTRY_DSN", None)  # the binary initialises Sentry; it must report nowhere
        # master.toml's volume_growth.copy_1 (default 7): how many volumes a collection (= a
        # bucket) claims on its first write. At 7, the 100 slots below ran out at the 15th bucket
        # and every later write got HTTP 500; the suite makes a bucket per test.
        env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "1"
        return env

    def prepare(self) -> None:
        identity = {"identities": [{
            "name": "flare",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        self.identity_path.write_text(json.dumps(identity, indent=2) + "\n")

    def command(self) -> list[str]:
        binary = seaweedfs_binary()
        if binary is None:
            raise InfraError("SeaweedFS is not built (python -m tests.infra install --only s3)")
        p = self.ports
        grpc = {name: port + GRPC_OFFSET for name, port in p.items()}
        return [
            binary, "-logtostderr=true", "server",
            f"-ip={self.host}", f"-ip.bind={self.host}", f"-dir={self.data_dir}",
            # Every bucket is a collection that claims a volume on its first write (see
            # environment()); room for 500 buckets (sparse files: only what is written).
            "-volume.max=500", "-master.volumeSizeLimitMB=64",
            f"-master.port={p['master']}", f"-master.port.grpc={grpc['master']}", "-master.telemetry=false",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={grpc['volume']}",
            "-volume.preStopSeconds=0",  # its default 10 s grace for a cluster's master to notice: none here
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={grpc['filer']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={p['main']}", f"-s3.port.grpc={grpc['main']}",
            f"-s3.localSocket={self.root / 's3.sock'}", f"-s3.config={self.identity_path}",
            # on by default with fixed ports; the tests use neither
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]

    def client(self):
        """A minio client for this server that fails fast (no retries): for readiness and tests."""
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=5), retries=False)
        return Minio(self.address, access_key=self.access_key, secret_key=self.secret_key, secure=False,
                     http_client=http)

    def not_ready_reason(self) -> str | None:
        status = http_status(f"{self.endpoint}/")
        if status is None:
            return "S3 gateway does not answer HTTP"
        # The gateway answers before the filer behind it can create buckets, and object writes
        # wait for the filer's lock ring (seconds later still): ready once a write goes through.
        client = self.client()
        step = "bucket creation"
        try:
            if not client.bucket_exists(self.bucket):
                client.make_bucket(self.bucket)
            step = "probe write"
            client.put_object(self.bucket, _PROBE_KEY, io.BytesIO(b"ok"), 2)
            client.remove_object(self.bucket, _PROBE_KEY)
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"; the reason is reported
            return f"{step} in bucket {self.bucket!r} failed: {type(exc).__name__}: {exc}"[:300]
        return None

    def _grpc_sockets(self) -> list[Path]:
        # `weed server` puts a unix socket per gRPC service at this fixed /tmp path (not
        # TMPDIR, not configurable) and removes it only on a clean shutdown.
        return [Path(f"/tmp/seaweedfs-{service}-grpc-{self.ports[name] + GRPC_OFFSET}.sock")
                for service, name in (("master", "master"), ("volume", "volume"), ("filer", "filer"), ("s3", "main"))]

    def destroy(self) -> None:
        """SIGTERM, a short wait, SIGKILL; then remove everything it wrote.

        stop() waits the full stop_timeout because a restart needs the data flushed. Here the
        data is thrown away, and a clean exit takes ~15 s only because the filer, stopped after
        the volume server, waits that long to flush its metadata log to it.
        """
        if self.is_running():
            self._signal_group(signal.SIGTERM)
            self._wait_gone(3)
        super().destroy()  # SIGKILL of whatever is left, then the root
        for socket_path in self._grpc_sockets():
            socket_path.unlink(missing_ok=True)

    def endpoints(self) -> dict:
        return {**super().endpoints(), "endpoint": self.endpoint, "access_key": self.access_key,
                "secret_key": self.secret_key, "bucket": self.bucket}

