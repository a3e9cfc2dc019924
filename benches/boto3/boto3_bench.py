"""boto3, the client the seed documents use, on s3_bench's small-object
workload against the same server: 1,000 objects of 64 KiB, 16 at a time
(a 16-thread pool, one client shared, as boto3 allows), put then get,
best of five, each after `sync`, with the CPU time (user and system,
all threads) the client spent on put + get, the least of five. Run by
`cargo xtask bench s3`, which passes the server (a Garage node) in
STORAGE_BENCH_S3_*.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

COUNT = 1000
SIZE = 64 * 1024
CONCURRENCY = 16


def main():
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["STORAGE_BENCH_S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["STORAGE_BENCH_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["STORAGE_BENCH_S3_SECRET_KEY"],
        config=Config(max_pool_connections=CONCURRENCY, s3={"addressing_style": "path"}),
    )
    bucket = os.environ["STORAGE_BENCH_S3_BUCKET"]
    body = bytes((i * 31 + 7) % 256 for i in range(SIZE))
    keys = [f"boto3-bench/small/{i:04}" for i in range(COUNT)]

    def put(key):
        client.put_object(Bucket=bucket, Key=key, Body=body)

    def get(key):
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if len(data) != SIZE:
            raise RuntimeError(f"{key}: {len(data)} bytes read back")

    puts, gets, cpu = [], [], []
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for _ in range(5):
            # The server writes to disk: start each measurement with
            # nothing of the last one left to flush (as s3_bench does).
            os.sync()
            cpu_start = time.process_time()
            start = time.perf_counter()
            list(pool.map(put, keys))
            puts.append(time.perf_counter() - start)
            start = time.perf_counter()
            list(pool.map(get, keys))
            gets.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    print("| boto3 on the same server, best of 5 | time |")
    print("|---|---|")
    print(f"| 1,000 x 64 KiB put, 16 at a time | {min(puts):.3f} s |")
    print(f"| 1,000 x 64 KiB get, 16 at a time | {min(gets):.3f} s |")
    print(f"| 1,000 x 64 KiB put + get, 16 at a time | {min(puts) + min(gets):.3f} s |")
    print(f"| client CPU for the put + get (least of 5) | {min(cpu):.3f} s |")


if __name__ == "__main__":
    main()
