"""S3 conformance of tovuk-objects, driven by boto3 configured only from the environment.

Run by `cargo test -p tovuk-objects` (tests/it/boto3.rs), which sets AWS_ENDPOINT_URL_S3,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and BUCKET_NAME for app one, plus
OTHER_BUCKET (app two's bucket) and OTHER_ACCESS_KEY / OTHER_SECRET (app two's credential).
Prints one line per case and exits non-zero if any case failed.
"""

import concurrent.futures
import hashlib
import io
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import boto3
import botocore
import botocore.config
from botocore.exceptions import ClientError

BUCKET = os.environ["BUCKET_NAME"]
s3 = boto3.client("s3")
CASES = []


def case(function):
    CASES.append(function)
    return function


def error_of(call, *args, **kwargs):
    """The (HTTP status, S3 code, message) of a call expected to fail."""
    try:
        call(*args, **kwargs)
    except ClientError as error:
        return (
            error.response["ResponseMetadata"]["HTTPStatusCode"],
            error.response["Error"].get("Code"),
            error.response["Error"].get("Message"),
        )
    raise AssertionError(f"{call.__name__} succeeded but should have failed")


def md5_etag(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


@case
def put_get_head_delete_round_trip_headers_and_metadata():
    body = b"hello tovuk objects"
    put = s3.put_object(
        Bucket=BUCKET,
        Key="docs/hello.txt",
        Body=body,
        ContentType="text/plain; charset=utf-8",
        ContentDisposition='attachment; filename="hello.txt"',
        ContentEncoding="identity",
        CacheControl="max-age=60",
        Metadata={"owner": "app-one", "purpose": "test"},
    )
    assert put["ETag"] == md5_etag(body), put["ETag"]
    got = s3.get_object(Bucket=BUCKET, Key="docs/hello.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == md5_etag(body)
    assert got["ContentType"] == "text/plain; charset=utf-8", got["ContentType"]
    assert got["ContentDisposition"] == 'attachment; filename="hello.txt"'
    assert got["ContentEncoding"] == "identity"
    assert got["CacheControl"] == "max-age=60"
    assert got["Metadata"] == {"owner": "app-one", "purpose": "test"}, got["Metadata"]
    assert got["ContentLength"] == len(body)
    head = s3.head_object(Bucket=BUCKET, Key="docs/hello.txt")
    assert head["ContentLength"] == len(body) and head["ETag"] == md5_etag(body)
    assert head["Metadata"] == {"owner": "app-one", "purpose": "test"}
    assert head["ContentType"] == "text/plain; charset=utf-8"
    s3.delete_object(Bucket=BUCKET, Key="docs/hello.txt")
    assert error_of(s3.get_object, Bucket=BUCKET, Key="docs/hello.txt")[:2] == (404, "NoSuchKey")
    assert error_of(s3.head_object, Bucket=BUCKET, Key="docs/hello.txt")[0] == 404
    # Deleting a missing key succeeds, as in S3.
    s3.delete_object(Bucket=BUCKET, Key="docs/hello.txt")


@case
def empty_object_round_trips():
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    got = s3.get_object(Bucket=BUCKET, Key="empty")
    assert got["Body"].read() == b"" and got["ETag"] == md5_etag(b"")


@case
def ranged_get_returns_206_and_content_range():
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=BUCKET, Key="range.bin", Body=body)
    got = s3.get_object(Bucket=BUCKET, Key="range.bin", Range="bytes=10-19")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == body[10:20]
    assert got["ContentRange"] == f"bytes 10-19/{len(body)}", got["ContentRange"]
    tail = s3.get_object(Bucket=BUCKET, Key="range.bin", Range="bytes=-5")
    assert tail["Body"].read() == body[-5:]
    open_ended = s3.get_object(Bucket=BUCKET, Key="range.bin", Range="bytes=1000-")
    assert open_ended["Body"].read() == body[1000:]
    status, code, _ = error_of(s3.get_object, Bucket=BUCKET, Key="range.bin", Range="bytes=5000-6000")
    assert (status, code) == (416, "InvalidRange"), (status, code)


@case
def list_v2_paginates_1050_keys_in_order():
    keys = [f"many/{i:05d}" for i in range(1050)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode()), keys))
    seen = []
    pages = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="many/", PaginationConfig={"PageSize": 100}):
        pages += 1
        assert page["KeyCount"] == len(page.get("Contents", []))
        assert len(page.get("Contents", [])) <= 100
        seen.extend(item["Key"] for item in page.get("Contents", []))
    assert seen == keys, (len(seen), seen[:3], seen[-3:])
    assert pages == 11, pages
    first = s3.list_objects_v2(Bucket=BUCKET, Prefix="many/", MaxKeys=100)
    assert first["IsTruncated"] and first["KeyCount"] == 100 and "NextContinuationToken" in first
    after = s3.list_objects_v2(Bucket=BUCKET, Prefix="many/", StartAfter="many/01040")
    assert [item["Key"] for item in after["Contents"]] == keys[1041:]
    assert not after["IsTruncated"]
    # ListObjects (v1) with markers.
    seen_v1 = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=BUCKET, Prefix="many/", PaginationConfig={"PageSize": 250}):
        seen_v1.extend(item["Key"] for item in page.get("Contents", []))
    assert seen_v1 == keys
    # Batch delete, 1000 at most per request as S3 allows.
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        result = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in chunk]})
        assert len(result["Deleted"]) == len(chunk) and not result.get("Errors")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="many/")["KeyCount"] == 0


@case
def delimiter_rolls_up_common_prefixes_across_pages():
    keys = ["dir/a/1", "dir/a/2", "dir/b/1", "dir/c", "dir/d", "dir/e/f/g"]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    page = s3.list_objects_v2(Bucket=BUCKET, Prefix="dir/", Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir/a/", "dir/b/", "dir/e/"], page
    assert [c["Key"] for c in page["Contents"]] == ["dir/c", "dir/d"]
    collected = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix="dir/", Delimiter="/", PaginationConfig={"PageSize": 1}
    ):
        collected += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        collected += [c["Key"] for c in page.get("Contents", [])]
    assert collected == ["dir/a/", "dir/b/", "dir/c", "dir/d", "dir/e/"], collected
    collected_v1 = []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket=BUCKET, Prefix="dir/", Delimiter="/", PaginationConfig={"PageSize": 2}
    ):
        collected_v1 += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        collected_v1 += [c["Key"] for c in page.get("Contents", [])]
    assert sorted(collected_v1) == ["dir/a/", "dir/b/", "dir/c", "dir/d", "dir/e/"], collected_v1
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True})


@case
def multipart_upload_etag_and_part_errors():
    part_size = 5 * 1024 * 1024
    parts_data = [bytes([i + 1]) * part_size for i in range(3)]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="big/multi.bin", ContentType="application/x-test", Metadata={"kind": "multipart"})
    upload_id = upload["UploadId"]
    etags = []
    for number, data in enumerate(parts_data, start=1):
        part = s3.upload_part(Bucket=BUCKET, Key="big/multi.bin", UploadId=upload_id, PartNumber=number, Body=data)
        assert part["ETag"] == md5_etag(data)
        etags.append(part["ETag"])
    listed = s3.list_parts(Bucket=BUCKET, Key="big/multi.bin", UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert all(p["Size"] == part_size for p in listed["Parts"])
    uploads = s3.list_multipart_uploads(Bucket=BUCKET)
    assert any(u["UploadId"] == upload_id for u in uploads.get("Uploads", []))

    missing = [{"PartNumber": n, "ETag": e} for n, e in zip([1, 2, 4], etags)]
    assert error_of(s3.complete_multipart_upload, Bucket=BUCKET, Key="big/multi.bin", UploadId=upload_id, MultipartUpload={"Parts": missing})[:2] == (400, "InvalidPart")
    wrong_etag = [{"PartNumber": 1, "ETag": etags[1]}, {"PartNumber": 2, "ETag": etags[1]}]
    assert error_of(s3.complete_multipart_upload, Bucket=BUCKET, Key="big/multi.bin", UploadId=upload_id, MultipartUpload={"Parts": wrong_etag})[1] == "InvalidPart"
    out_of_order = [{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]
    assert error_of(s3.complete_multipart_upload, Bucket=BUCKET, Key="big/multi.bin", UploadId=upload_id, MultipartUpload={"Parts": out_of_order})[:2] == (400, "InvalidPartOrder")

    parts = [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key="big/multi.bin", UploadId=upload_id, MultipartUpload={"Parts": parts})
    expected = '"' + hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest() + '-3"'
    assert done["ETag"] == expected, (done["ETag"], expected)
    got = s3.get_object(Bucket=BUCKET, Key="big/multi.bin")
    assert got["ETag"] == expected and got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"kind": "multipart"}
    assert hashlib.md5(got["Body"].read()).digest() == hashlib.md5(b"".join(parts_data)).digest()
    assert error_of(s3.list_parts, Bucket=BUCKET, Key="big/multi.bin", UploadId=upload_id)[1] == "NoSuchUpload"

    aborted = s3.create_multipart_upload(Bucket=BUCKET, Key="big/aborted.bin")["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key="big/aborted.bin", UploadId=aborted, PartNumber=1, Body=b"abc")
    s3.abort_multipart_upload(Bucket=BUCKET, Key="big/aborted.bin", UploadId=aborted)
    assert error_of(s3.list_parts, Bucket=BUCKET, Key="big/aborted.bin", UploadId=aborted)[:2] == (404, "NoSuchUpload")
    s3.delete_object(Bucket=BUCKET, Key="big/multi.bin")


@case
def managed_transfer_upload_and_download_use_default_checksums():
    data = os.urandom(3 * 1024 * 1024) * 7  # 21 MiB: multipart upload, ranged parallel download
    s3.upload_fileobj(io.BytesIO(data), BUCKET, "big/managed.bin")
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, "big/managed.bin", out)
    assert out.getvalue() == data
    small = b"checksummed"
    s3.put_object(Bucket=BUCKET, Key="crc.txt", Body=small, ChecksumAlgorithm="SHA256")
    got = s3.get_object(Bucket=BUCKET, Key="crc.txt", ChecksumMode="ENABLED")
    assert got["Body"].read() == small
    assert "ChecksumSHA256" in got, got.keys()
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "big/managed.bin"}, {"Key": "crc.txt"}]})


@case
def copy_object_with_copy_and_replace_directives():
    s3.put_object(Bucket=BUCKET, Key="copy/src", Body=b"source", ContentType="text/x-src", Metadata={"a": "1"})
    copied = s3.copy_object(Bucket=BUCKET, Key="copy/dst", CopySource={"Bucket": BUCKET, "Key": "copy/src"})
    assert copied["CopyObjectResult"]["ETag"] == md5_etag(b"source")
    dst = s3.get_object(Bucket=BUCKET, Key="copy/dst")
    assert dst["Body"].read() == b"source" and dst["ContentType"] == "text/x-src" and dst["Metadata"] == {"a": "1"}
    s3.copy_object(
        Bucket=BUCKET, Key="copy/dst2", CopySource=f"{BUCKET}/copy/src", MetadataDirective="REPLACE",
        ContentType="text/x-new", Metadata={"b": "2"},
    )
    dst2 = s3.head_object(Bucket=BUCKET, Key="copy/dst2")
    assert dst2["ContentType"] == "text/x-new" and dst2["Metadata"] == {"b": "2"}, dst2
    assert error_of(s3.copy_object, Bucket=BUCKET, Key="copy/src", CopySource={"Bucket": BUCKET, "Key": "copy/src"})[1] == "InvalidRequest"
    assert error_of(s3.copy_object, Bucket=BUCKET, Key="copy/x", CopySource={"Bucket": BUCKET, "Key": "copy/missing"})[1] == "NoSuchKey"
    other = os.environ["OTHER_BUCKET"]
    assert error_of(s3.copy_object, Bucket=BUCKET, Key="copy/x", CopySource={"Bucket": other, "Key": "k"})[1] == "AccessDenied"
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in ["copy/src", "copy/dst", "copy/dst2"]]})


def presigned_round_trip(client, key):
    # Content-Type is signed (SigV2 signs it always), so the uploader sends the one it was presigned with.
    put_url = client.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": key, "ContentType": "text/plain"}, ExpiresIn=300
    )
    request = urllib.request.Request(put_url, data=b"via presigned put", method="PUT", headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
    except urllib.error.HTTPError as error:
        raise AssertionError(f"presigned PUT {put_url}: {error.code} {error.read().decode()}")
    get_url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    with urllib.request.urlopen(get_url) as response:
        assert response.read() == b"via presigned put"
        assert response.headers["Content-Type"] == "text/plain"


def expect_expired(url):
    try:
        urllib.request.urlopen(url)
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        assert error.code == 403, error.code
        assert "<Code>AccessDenied</Code>" in body and "Request has expired" in body, body
    else:
        raise AssertionError("expired presigned URL was accepted")


S3V4 = boto3.client("s3", config=botocore.config.Config(signature_version="s3v4"))


@case
def presigned_get_and_put_urls_work_with_urllib():
    # boto3 presigns with SigV2 query auth unless told s3v4; apps do both.
    presigned_round_trip(s3, "presigned/v2")
    presigned_round_trip(S3V4, "presigned/v4")
    assert "X-Amz-Signature=" in S3V4.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "k"})


@case
def expired_presigned_url_is_access_denied():
    urls = [
        client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "presigned/v4"}, ExpiresIn=1)
        for client in (s3, S3V4)
    ]
    time.sleep(2)
    for url in urls:
        expect_expired(url)


@case
def conditional_get_and_head_answer_304_and_412():
    put = s3.put_object(Bucket=BUCKET, Key="cond", Body=b"conditional")
    etag = put["ETag"]
    assert error_of(s3.get_object, Bucket=BUCKET, Key="cond", IfNoneMatch=etag)[0] == 304
    assert error_of(s3.head_object, Bucket=BUCKET, Key="cond", IfNoneMatch=etag)[0] == 304
    assert error_of(s3.get_object, Bucket=BUCKET, Key="cond", IfMatch='"0000"')[:2] == (412, "PreconditionFailed")
    assert error_of(s3.head_object, Bucket=BUCKET, Key="cond", IfMatch='"0000"')[0] == 412
    assert s3.get_object(Bucket=BUCKET, Key="cond", IfMatch=etag)["Body"].read() == b"conditional"
    assert s3.get_object(Bucket=BUCKET, Key="cond", IfNoneMatch='"0000"')["Body"].read() == b"conditional"
    future = datetime.now(timezone.utc) + timedelta(days=1)
    past = datetime.now(timezone.utc) - timedelta(days=1)
    assert error_of(s3.get_object, Bucket=BUCKET, Key="cond", IfModifiedSince=future)[0] == 304
    assert error_of(s3.get_object, Bucket=BUCKET, Key="cond", IfUnmodifiedSince=past)[0] == 412
    assert s3.get_object(Bucket=BUCKET, Key="cond", IfModifiedSince=past)["Body"].read() == b"conditional"
    # Conditional writes: If-None-Match: * refuses to overwrite.
    assert error_of(s3.put_object, Bucket=BUCKET, Key="cond", Body=b"x", IfNoneMatch="*")[:2] == (412, "PreconditionFailed")
    s3.delete_object(Bucket=BUCKET, Key="cond")


@case
def wrong_secret_unknown_key_and_other_bucket_are_refused():
    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    wrong = boto3.client("s3", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong")
    assert error_of(wrong.list_objects_v2, Bucket=BUCKET)[:2] == (403, "SignatureDoesNotMatch")
    unknown = boto3.client("s3", aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key="whatever")
    assert error_of(unknown.list_objects_v2, Bucket=BUCKET)[:2] == (403, "InvalidAccessKeyId")
    other = os.environ["OTHER_BUCKET"]
    assert error_of(s3.list_objects_v2, Bucket=other)[:2] == (403, "AccessDenied")
    assert error_of(s3.put_object, Bucket=other, Key="k", Body=b"x")[:2] == (403, "AccessDenied")
    assert error_of(s3.get_object, Bucket=other, Key="k")[:2] == (403, "AccessDenied")
    # App two's own credential opens app two's bucket, not ours.
    two = boto3.client("s3", aws_access_key_id=os.environ["OTHER_ACCESS_KEY"], aws_secret_access_key=os.environ["OTHER_SECRET"])
    two.put_object(Bucket=other, Key="mine", Body=b"two")
    assert error_of(two.get_object, Bucket=BUCKET, Key="docs")[1] == "AccessDenied"
    assert endpoint.startswith("http://127.0.0.1:")


@case
def buckets_belong_to_the_platform():
    buckets = s3.list_buckets()["Buckets"]
    assert [b["Name"] for b in buckets] == [BUCKET], buckets
    s3.head_bucket(Bucket=BUCKET)
    s3.get_bucket_location(Bucket=BUCKET)
    assert "Status" not in s3.get_bucket_versioning(Bucket=BUCKET)  # never versioned
    assert error_of(s3.create_bucket, Bucket=BUCKET)[:2] == (409, "BucketAlreadyOwnedByYou")
    assert error_of(s3.create_bucket, Bucket="new-bucket-by-app")[:2] == (403, "AccessDenied")
    assert error_of(s3.delete_bucket, Bucket=BUCKET)[:2] == (403, "AccessDenied")


@case
def path_like_keys_stay_distinct_objects():
    keys = ["..", "../escape", "a/../../b", "%2F", "a%2Fb", "a/b", "/leading", "a//b", "ü/ñ 空 +&?#", "a\\b", "."]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    for key in keys:
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == key.encode(), key
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    for key in keys:
        assert key in listed, (key, listed)
    assert sorted(listed, key=lambda k: k.encode()) == listed
    status, code, _ = error_of(s3.put_object, Bucket=BUCKET, Key="k" * 1025, Body=b"x")
    assert (status, code) == (400, "KeyTooLongError"), (status, code)
    s3.put_object(Bucket=BUCKET, Key="k" * 1024, Body=b"max")
    assert s3.get_object(Bucket=BUCKET, Key="k" * 1024)["Body"].read() == b"max"
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in keys + ["k" * 1024]]})


def main():
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}")
    only = os.environ.get("ONLY_CASE")
    failed = 0
    for function in CASES:
        if only and function.__name__ != only:
            continue
        started = time.monotonic()
        try:
            function()
            print(f"ok   {function.__name__} ({time.monotonic() - started:.2f}s)")
        except Exception:
            failed += 1
            print(f"FAIL {function.__name__}")
            traceback.print_exc(file=sys.stdout)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
