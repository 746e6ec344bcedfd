"""Where the data lives: a local folder or an S3 prefix, behind one small interface.

``data_dir`` is either a local path or ``s3://bucket/prefix``. Every room that reads or
writes the data directory goes through a :class:`DataLocation`: the Parquet store (its
pyarrow filesystem and root), the state and run files, the KPI tables, the exporter and
the report. A local folder behaves exactly as before (temporary file, fsync, rename);
in object storage a file is replaced by one PUT, which S3 makes visible whole or not at
all, so no temporary object is ever needed.

Credentials, region and endpoint come from ``[storage]`` (secrets as ``env:``/``file:``
references) or else from the standard AWS environment variables and files
(``AWS_ENDPOINT_URL`` points it at an S3-compatible store on premises). pyarrow is
imported only when object storage is used, so light commands stay light.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workstyle.collector.errors import CollectorError, ConfigError

#: ``--organisation all``: every organisation of the dataset together (read only).
ALL_ORGANISATIONS = "all"
ORG_KEY = "organisation"
_ORG_CODE = re.compile(r"^\d{6}$")
_WEIGHTS = (6, 5, 4, 3, 2)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_organisation(value: str, where: str) -> str:
    """Validate a 全国地方公共団体コード: six digits, prefecture 01-47, the JIS X 0402 check digit.

    The check digit is 11 minus (the first five digits weighted 6, 5, 4, 3, 2, modulo
    11), last digit only: 040002 (宮城県), 041009 (仙台市), 130001 (東京都).
    """
    if not _ORG_CODE.match(value):
        raise ConfigError(
            f"{where}: expected the 6-digit 地方公共団体コード (e.g. '040002' for 宮城県),"
            f" got {value!r}"
        )
    if not 1 <= int(value[:2]) <= 47:
        raise ConfigError(f"{where}: {value!r} starts with prefecture {value[:2]}; expected 01-47")
    check = (11 - sum(int(d) * w for d, w in zip(value[:5], _WEIGHTS, strict=True)) % 11) % 10
    if int(value[5]) != check:
        raise ConfigError(
            f"{where}: {value!r} fails the check digit (expected {value[:5]}{check});"
            " check the code against 総務省's 全国地方公共団体コード list"
        )
    return value


def is_uri(value: str) -> bool:
    """Whether ``value`` names a location by URI (``s3://``) rather than a local path."""
    return bool(_SCHEME.match(value))


def check_data_dir(value: str, where: str) -> str:
    """Validate a ``data_dir`` URI; return it normalised (no trailing slash)."""
    m = _SCHEME.match(value)
    if not m:
        return value
    scheme = m.group(1).lower()
    if scheme != "s3":
        raise ConfigError(
            f"{where}: unsupported scheme {scheme}://; expected a local path or s3://bucket/prefix"
        )
    bucket, _, prefix = value[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket):
        raise ConfigError(
            f"{where}: {bucket!r} is not an S3 bucket name; expected s3://bucket/prefix"
            " (3-63 lower-case letters, digits, '.' or '-')"
        )
    prefix = prefix.strip("/")
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


class StorageError(CollectorError):
    """Object storage refused or could not be reached for a read or write (one line)."""


@contextlib.contextmanager
def _one_line(location: DataLocation, action: str, path: str) -> Any:
    """Object storage errors as one line naming the object (the run line shows it)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageError(
            f"{location.display(path)}: cannot {action}: {_first_line(exc)}"
            " (check the endpoint, the credentials and the bucket)"
        ) from None


@dataclass(frozen=True)
class StorageSettings:
    """Resolved ``[storage]`` settings (secret values already read from their references)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    #: How long a writer lease in object storage lasts unless renewed.
    lease_seconds: float = 300.0

    def endpoint(self) -> str | None:
        """The S3 endpoint: ``[storage] endpoint_url``, else the standard AWS variables."""
        return (
            self.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )

    def region_name(self) -> str | None:
        return self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class FileStat:
    """What a cache needs to know whether a file changed (os.stat_result's names)."""

    st_mtime_ns: int
    st_size: int
    st_ino: int = 0


class StoredFile:
    """A file in object storage with the few ``Path`` methods the readers use."""

    def __init__(self, location: DataLocation, path: str) -> None:
        self.location = location
        self.path = path
        self.name = path.rpartition("/")[2]

    def __str__(self) -> str:
        return self.location.display(self.path)

    def __repr__(self) -> str:
        return f"StoredFile({str(self)!r})"

    def stat(self) -> FileStat:
        import pyarrow.fs as pafs

        info = self.location.fs.get_file_info(self.path)
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(str(self))
        return FileStat(st_mtime_ns=int(info.mtime_ns or 0), st_size=int(info.size or 0))

    def exists(self) -> bool:
        return self.location.exists(self.path)

    is_file = exists

    def read_bytes(self) -> bytes:
        return self.location.read_bytes(self.path)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def open(self, mode: str = "r", encoding: str | None = None) -> io.IOBase:
        data = self.read_bytes()
        if "b" in mode:
            return io.BytesIO(data)
        return io.StringIO(data.decode(encoding or "utf-8"))


class DataLocation:
    """The data directory: a pyarrow filesystem, a root path in it, and atomic whole-file I/O."""

    def __init__(
        self,
        uri: str,
        fs: Any,
        root: str,
        settings: StorageSettings | None = None,
        organisation: str | None = None,
    ) -> None:
        self.uri = uri
        self.fs = fs
        self.root = root.rstrip("/")
        self.settings = settings or StorageSettings()
        #: This collector's organisation (its partitions, state and KPI tables live one
        #: level below each top folder); None for a single-organisation dataset;
        #: ALL_ORGANISATIONS to read every organisation together.
        self.organisation = organisation
        #: Called before every write: the writer lease raises here once it is lost.
        self.write_guard: Callable[[], None] | None = None
        self._s3_client: Any = None

    @property
    def is_local(self) -> bool:
        return not self.uri.startswith("s3://")

    @property
    def local_dir(self) -> Path | None:
        """The folder, for a local data directory; None in object storage."""
        return Path(self.root) if self.is_local else None

    def machine_dir(self) -> Path:
        """A local folder for what stays on this machine (the live poller's snapshot).

        The data directory itself when local; for object storage a folder under
        ``$XDG_STATE_HOME`` (default ``~/.local/state``) named after the bucket and prefix:
        a snapshot rewritten every few seconds for this host's exporter has no place in
        a shared bucket.
        """
        if self.is_local:
            return Path(self.root)
        base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
        return Path(base).expanduser() / "workstyle-collector" / "s3" / self.root

    @property
    def bucket(self) -> str:
        return self.root.partition("/")[0]

    def with_organisation(self, organisation: str | None) -> DataLocation:
        """The same data directory seen as another organisation (or all of them)."""
        other = DataLocation(self.uri, self.fs, self.root, self.settings, organisation)
        other.write_guard = self.write_guard
        other._s3_client = self._s3_client
        return other

    # -- paths ---------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """A path below the root, in the filesystem's own terms."""
        return "/".join([self.root, *parts])

    def org_parts(self, top: str, *parts: str) -> tuple[str, ...]:
        """``top/organisation=X/parts`` for an organisation, else ``top/parts``."""
        if self.organisation and self.organisation != ALL_ORGANISATIONS:
            return (top, f"{ORG_KEY}={self.organisation}", *parts)
        return (top, *parts)

    def org_path(self, top: str, *parts: str) -> str:
        """A path in this organisation's part of a top folder (see :meth:`org_parts`)."""
        return self.path(*self.org_parts(top, *parts))

    def display(self, path: str) -> str:
        """A path as a user writes it: ``s3://bucket/key`` or the local path."""
        return path if self.is_local else f"s3://{path}"

    def file(self, *parts: str) -> Path | StoredFile:
        """A handle to one file: a ``Path`` when local, else a :class:`StoredFile`."""
        if self.is_local:
            return Path(self.root, *parts)
        return StoredFile(self, self.path(*parts))

    # -- whole-file I/O ------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        if self.is_local:
            return os.path.isfile(path)
        # One HEAD: get_file_info would also list the prefix to tell a missing key from
        # a "directory", doubling the requests of every partition write.
        try:
            self.fs.open_input_file(path).close()
        except FileNotFoundError:
            return False
        return True

    def read_bytes(self, path: str) -> bytes:
        """The file's content; ``FileNotFoundError`` when there is none."""
        if self.is_local:
            return Path(path).read_bytes()
        try:
            with self.fs.open_input_stream(path) as fh:
                return fh.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            if "NoSuchKey" in str(exc) or "Path does not exist" in str(exc):
                raise FileNotFoundError(self.display(path)) from None
            raise StorageError(
                f"{self.display(path)}: cannot read: {_first_line(exc)}"
                " (check the endpoint, the credentials and the bucket)"
            ) from None

    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace a file whole: temporary file, fsync and rename; in S3 one PUT."""
        if self.write_guard is not None:
            self.write_guard()
        if not self.is_local:
            with _one_line(self, "write", path), self.fs.open_output_stream(path) as out:
                out.write(data)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def delete(self, path: str) -> None:
        """Remove a file if it is there."""
        if self.write_guard is not None:
            self.write_guard()
        if self.is_local:
            Path(path).unlink(missing_ok=True)
            return
        # botocore, not pyarrow: pyarrow's delete_file leaves an empty "folder" object
        # behind (it keeps the parent "directory" alive), clutter in a shared bucket.
        bucket, _, key = path.partition("/")
        with _one_line(self, "delete", path):
            self.s3_client().delete_object(Bucket=bucket, Key=key)

    def files(self, directory: str, suffix: str = "") -> list[tuple[str, int]]:
        """(path, mtime in ns) of the files directly in ``directory``, by name."""
        import pyarrow.fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        return sorted(
            (i.path, int(i.mtime_ns or 0))
            for i in infos
            if i.type == pafs.FileType.File and i.base_name.endswith(suffix)
        )

    def put_whole(self, path: str, write: Callable[[Any], None]) -> None:
        """Object storage: run ``write`` into memory, then replace the object with one PUT.

        Nothing reaches the store before ``write`` has finished, so a failure or a kill
        while writing leaves the old object; an upload cut off half-way is never completed,
        and S3 shows an object only once its upload is complete.
        """
        import pyarrow as pa

        if self.write_guard is not None:
            self.write_guard()
        sink = pa.BufferOutputStream()
        write(sink)
        buf = sink.getvalue()
        with _one_line(self, "write", path), self.fs.open_output_stream(path) as out:
            out.write(buf)

    # -- object storage clients ----------------------------------------------------------
    def s3_client(self) -> Any:
        """A botocore S3 client with the same endpoint, region and credentials (for leases).

        Made once per location (loading botocore's service model takes a few tenths of a
        second); botocore clients are safe to share between threads.
        """
        if self._s3_client is None:
            self._s3_client = self._new_s3_client()
        return self._s3_client

    def _new_s3_client(self) -> Any:
        try:
            import botocore.config
            import botocore.session
        except ImportError:
            raise ConfigError(
                f"data_dir {self.uri}: the writer lease in object storage needs botocore;"
                " install it with: pip install 'workstyle-collector[s3]'"
            ) from None
        s = self.settings
        endpoint = s.endpoint()
        session = botocore.session.get_session()
        return session.create_client(
            "s3",
            endpoint_url=endpoint,
            region_name=s.region_name(),
            aws_access_key_id=s.access_key_id,
            aws_secret_access_key=s.secret_access_key,
            aws_session_token=s.session_token,
            # S3-compatible stores on premises rarely serve per-bucket host names.
            config=botocore.config.Config(
                s3={"addressing_style": "path"} if endpoint else {},
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )


def local(path: str | os.PathLike[str], organisation: str | None = None) -> DataLocation:
    """A local data directory."""
    import pyarrow.fs as pafs

    root = str(Path(path).resolve())
    return DataLocation(root, pafs.LocalFileSystem(), root, organisation=organisation)


def open_location(
    data_dir: str | os.PathLike[str], settings: StorageSettings, organisation: str | None = None
) -> DataLocation:
    """The data directory named by a local path or an ``s3://bucket/prefix`` URI."""
    text = str(data_dir)
    if not is_uri(text):
        return local(text, organisation)
    uri = check_data_dir(text, "data_dir")
    import pyarrow.fs as pafs

    bucket = uri[len("s3://") :].partition("/")[0]
    kwargs: dict[str, Any] = {}
    endpoint = settings.endpoint()
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme or "https"
    region = settings.region_name()
    if region:
        kwargs["region"] = region
    elif not endpoint:
        # Unresolvable: the first real request names the problem.
        with contextlib.suppress(OSError):
            kwargs["region"] = pafs.resolve_s3_region(bucket)
    if settings.access_key_id:
        kwargs["access_key"] = settings.access_key_id
        kwargs["secret_key"] = settings.secret_access_key
        if settings.session_token:
            kwargs["session_token"] = settings.session_token
    # Delayed open: a small file is sent as one PutObject on close, not a multipart upload.
    fs = pafs.S3FileSystem(allow_delayed_open=True, **kwargs)
    location = DataLocation(uri, fs, uri[len("s3://") :], settings, organisation)
    check_reachable(location)
    return location


def check_reachable(location: DataLocation) -> None:
    """Fail with one line when the bucket is missing or the credentials are refused."""
    if location.is_local:
        return
    import pyarrow.fs as pafs

    endpoint = location.settings.endpoint() or "AWS S3"
    try:
        info = location.fs.get_file_info(location.bucket)
    except OSError as exc:
        raise ConfigError(
            f"data_dir {location.uri}: cannot reach bucket {location.bucket!r} at {endpoint}:"
            f" {_first_line(exc)}; check [storage] or the AWS_* credentials and endpoint"
        ) from None
    if info.type != pafs.FileType.Directory:
        raise ConfigError(
            f"data_dir {location.uri}: bucket {location.bucket!r} does not exist at {endpoint};"
            " create it first (the collector never creates buckets)"
        )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
