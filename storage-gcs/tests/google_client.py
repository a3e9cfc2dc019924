"""Google's own Python client (google-cloud-storage), driven by the Rust
tests as the reference: it reads what the backend wrote, writes what the
backend must read, and computes V4 signed URLs to compare with.

    python google_client.py download ENDPOINT BUCKET NAME   -> JSON on stdout
    python google_client.py upload ENDPOINT BUCKET NAME FILE CONTENT_TYPE METADATA_JSON
    python google_client.py sign KEY_FILE < cases.json       -> JSON list of URLs
    python google_client.py public-key KEY_FILE              -> hex DER of the public key
"""

import datetime
import hashlib
import json
import sys
from unittest import mock

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage import _signing
from google.oauth2 import service_account


def client(endpoint):
    return storage.Client(
        project="storage-test",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )


def download(endpoint, bucket, name):
    blob = client(endpoint).bucket(bucket).get_blob(name)
    data = blob.download_as_bytes()
    print(json.dumps({
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_type": blob.content_type,
        "cache_control": blob.cache_control,
        "metadata": blob.metadata or {},
        "generation": str(blob.generation),
    }))


def upload(endpoint, bucket, name, path, content_type, metadata):
    blob = client(endpoint).bucket(bucket).blob(name)
    blob.metadata = json.loads(metadata)
    # A chunk size forces a resumable upload for large files, as the
    # client does on its own above 8 MiB.
    blob.chunk_size = 256 * 1024 if blob.metadata.get("resumable") else None
    blob.upload_from_filename(path, content_type=content_type)
    print(json.dumps({"generation": str(blob.generation)}))


def sign(key_file):
    credentials = service_account.Credentials.from_service_account_file(key_file)
    cases = json.load(sys.stdin)
    # A client only to carry the universe domain; it sends nothing.
    offline = storage.Client(project="storage-test", credentials=AnonymousCredentials())
    urls = []
    for case in cases:
        stamp = case["timestamp"]
        blob = storage.Blob(case["name"], bucket=storage.Bucket(offline, case["bucket"]))
        with mock.patch.object(_signing, "get_v4_now_dtstamps", return_value=(stamp, stamp[:8])):
            urls.append(blob.generate_signed_url(
                version="v4",
                expiration=datetime.timedelta(seconds=case["expires"]),
                method=case["method"],
                content_type=case.get("content_type"),
                credentials=credentials,
                api_access_endpoint=case["endpoint"],
            ))
    print(json.dumps(urls))


def public_key(key_file):
    from cryptography.hazmat.primitives import serialization
    info = json.load(open(key_file))
    key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    print(der.hex())


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"download": download, "upload": upload, "sign": sign, "public-key": public_key}[command](*args)
