"""`gs://` without a network, for tests: every gs:// path, as epath (and so Orbax and
`cnngen_jax.files`) reaches it, maps to a local folder.

How, with etils 1.15 and no TensorFlow: `epath.Path("gs://...")` goes to epath's fsspec backend,
which asks fsspec for its "gcs" filesystem (gcsfs in production). Here fsspec's registry maps
"gs"/"gcs" to `FakeGCSFileSystem`, a `DirFileSystem` over the folder. Orbax reads and writes its
directories and JSON through epath, and its arrays through TensorStore, which for gs:// uses its
own GCS client (not epath) and asks the storage API whether the bucket has a hierarchical
namespace (google-cloud-storage): those two calls (`gcs_utils.get_kvstore_for_gcs`,
`gcs_utils.get_bucket`) are pointed at the same folder and answered "no". With a gs:// path Orbax
takes its object-store code (a commit_success.txt per finished step instead of a rename).

Object-store semantics a call site can trip over are kept: opening for append raises (gcsfs
silently truncates instead). Any `open`/`os.*` call on a gs:// string instead of epath either
fails or creates `gs:/...` below the current directory, which `fake_gcs` (run from an empty
current directory) reports.
"""

import dataclasses
import importlib
import os
import pathlib
from collections.abc import Iterator

import pytest
from etils.epath import backend as epath_backend
from etils.epath import gpath
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from orbax.checkpoint._src.path import gcs_utils

BUCKET = "bucket"
# The module (`fsspec.registry` as an attribute of fsspec is its read-only view).
_FSSPEC_REGISTRY = importlib.import_module("fsspec.registry")


class FakeGCSFileSystem(DirFileSystem):
    """gs://BUCKET/KEY as ROOT/BUCKET/KEY (ROOT: `root`, set by `fake_gcs`)."""

    protocol = ("gs", "gcs")
    cachable = False  # a new instance per test: each has its own root
    root = ""

    def __init__(self, **storage_options):
        storage_options.pop("finalize_on_close", None)  # gcsfs's option, passed by epath
        # auto_mkdir: an object is written without making its directories first, as on GCS
        local = LocalFileSystem(auto_mkdir=True)
        super().__init__(path=self.root, fs=local, **storage_options)

    def open(self, path, mode="rb", *args, **kwargs):
        if "a" in mode:
            raise NotImplementedError(
                f"append mode on {path}: object stores cannot append (gcsfs opens 'a' as 'w', "
                "truncating the object)"
            )
        return super().open(path, mode, *args, **kwargs)


class _NoHierarchicalNamespace:
    hierarchical_namespace_enabled = False


@dataclasses.dataclass
class FakeGCS:
    root: pathlib.Path  # the local folder holding the buckets
    cwd: pathlib.Path  # the test's current directory, which must stay empty

    def url(self, name: str) -> str:
        """gs://bucket/NAME."""
        return f"gs://{BUCKET}/{name}"

    def local(self, url: str) -> pathlib.Path:
        """The local file behind a gs:// URL, for assertions."""
        return self.root / url.removeprefix("gs://")

    def strays(self) -> list[str]:
        """What was written below the current directory (e.g. `gs:/bucket/run` by an
        `os.makedirs` of a gs:// URL)."""
        return sorted(str(p.relative_to(self.cwd)) for p in self.cwd.rglob("*"))


def _clear_epath_caches() -> None:
    epath_backend.fsspec_backend._get_filesystem.cache_clear()
    gpath._is_tf_installed.cache_clear()


def serve(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGCS]:
    """For a fixture (`yield from serve(tmp_path, monkeypatch)`): gs://bucket/... backed by
    `tmp_path/gcs/bucket/...` for the test, run from an empty current directory that must stay
    empty (nothing may treat a gs:// URL as a local path)."""
    root = tmp_path / "gcs"
    (root / BUCKET).mkdir(parents=True)
    monkeypatch.setattr(FakeGCSFileSystem, "root", str(root))
    for name in FakeGCSFileSystem.protocol:
        monkeypatch.setitem(_FSSPEC_REGISTRY._registry, name, FakeGCSFileSystem)
    monkeypatch.setenv("EPATH_USE_TF", "false")  # epath's fsspec backend even with TF installed
    _clear_epath_caches()

    def file_kvstore(ckpt_path: str) -> dict:
        bucket, key = gcs_utils.parse_gcs_path(ckpt_path, add_trailing_slash=False)
        return {"driver": "file", "path": os.path.join(root, bucket, key)}

    monkeypatch.setattr(gcs_utils, "get_kvstore_for_gcs", file_kvstore)
    monkeypatch.setattr(gcs_utils, "get_bucket", lambda name: _NoHierarchicalNamespace())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    fake = FakeGCS(root, cwd)
    yield fake
    _clear_epath_caches()
    assert not fake.strays(), f"written below the current directory, not gs://: {fake.strays()}"
