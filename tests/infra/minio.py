"""MinIO, built from source by install.py; one server, one drive, loopback only."""

from __future__ import annotations

from .base import Server, http_status
from .install import InfraError, minio_binary

__all__ = ["MinioServer"]


class MinioServer(Server):
    kind = "minio"
    port_names = ("main", "console")
    start_timeout = 60.0
    access_key = "flare-test"
    secret_key = "flare-test-secret"
    bucket = "flare"

    @property
    def url(self) -> str:
        return self.url_for(self.bucket)

    def url_for(self, bucket: str) -> str:
        return f"s3://{self.access_key}:{self.secret_key}@{self.address}/{bucket}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "MINIO_ROOT_USER": self.access_key,
                "MINIO_ROOT_PASSWORD": self.secret_key, "MINIO_BROWSER": "off",
                "MINIO_UPDATE": "off", "MINIO_CI_CD": "1"}

    def command(self) -> list[str]:
        binary = minio_binary()
        if binary is None:
            raise InfraError("minio is not built (python -m tests.infra install --only minio)")
        return [binary, "server", str(self.data_dir), "--address", self.address,
                "--console-address", f"{self.host}:{self.ports['console']}", "--quiet"]

    def not_ready_reason(self) -> str | None:
        status = http_status(f"{self.endpoint}/minio/health/live")
        return None if status == 200 else f"/minio/health/live answered {status}"

    def endpoints(self) -> dict:
        return {**super().endpoints(), "endpoint": self.endpoint, "access_key": self.access_key,
                "secret_key": self.secret_key, "bucket": self.bucket}
