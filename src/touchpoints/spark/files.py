"""Files through Hadoop's FileSystem, as Spark reaches them: a local path, ``hdfs://``,
``s3a://`` (with Spark's own configuration for them), so that the jobs read the manifest and
write their result wherever the cluster keeps the export."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class Listed(NamedTuple):
    name: str
    bytes: int


def _fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm: Any = spark._jvm  # noqa: SLF001 - PySpark's documented way to Hadoop's FileSystem
    hadoop = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark._jsc.hadoopConfiguration()  # noqa: SLF001
    return hadoop.getFileSystem(conf), hadoop


def exists(spark: SparkSession, path: str) -> bool:
    fs, hadoop = _fs(spark, path)
    return bool(fs.exists(hadoop))


def read_bytes(spark: SparkSession, path: str) -> bytes:
    fs, hadoop = _fs(spark, path)
    stream = fs.open(hadoop)
    try:
        jvm: Any = spark._jvm  # noqa: SLF001
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def write_bytes(spark: SparkSession, path: str, data: bytes) -> None:
    """``data`` at ``path`` whole: written beside it, then renamed over it."""
    fs, hadoop = _fs(spark, path)
    temporary = _fs(spark, path + ".tmp")[1]
    out = fs.create(temporary, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()
    fs.delete(hadoop, False)
    if not fs.rename(temporary, hadoop):
        raise OSError(f"cannot rename {path}.tmp to {path}")


def delete(spark: SparkSession, path: str) -> None:
    fs, hadoop = _fs(spark, path)
    fs.delete(hadoop, True)


def parquet_files(spark: SparkSession, directory: str) -> list[Listed]:
    """The Parquet files Spark wrote in ``directory`` (not its _SUCCESS, not hidden ones)."""
    fs, hadoop = _fs(spark, directory)
    found = [
        Listed(str(status.getPath().getName()), int(status.getLen()))
        for status in fs.listStatus(hadoop)
        if status.isFile()
    ]
    return sorted(f for f in found if f.name.endswith(".parquet") and f.name[0] not in "._")
