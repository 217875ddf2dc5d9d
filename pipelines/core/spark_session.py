"""The one SparkSession factory: curate's metadata side and img2dataset's Spark distributor both attach through it, so
`SPARK_MASTER` means the same cluster for both."""

from __future__ import annotations

import os
import sys


def spark_session(app_name: str = "tessera"):
    """A SparkSession on SPARK_MASTER (default local[*]), bound to 127.0.0.1 when local; an active one is reused."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    master = os.environ.get("SPARK_MASTER", "local[*]")
    builder = SparkSession.builder.master(master)
    if master.startswith("local"):  # the default 200 shuffle partitions are pure overhead on one machine
        builder = builder.config("spark.sql.shuffle.partitions", str(max(2, os.cpu_count() or 2)))
    # Python executors run this interpreter: PySpark reads PYSPARK_PYTHON when the context starts, else runs whatever
    # `python3` is on the worker's PATH, which lacks Tessera. On a real cluster the path must exist on every worker.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (builder.appName(app_name)
            .config("spark.executorEnv.NO_ALBUMENTATIONS_UPDATE", "1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate())
