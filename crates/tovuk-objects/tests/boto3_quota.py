"""A class A cap refused by the platform's gate reaches boto3 as `QuotaExceeded` with the gate's message.

Run by tests/it/boto3.rs with a gate that admits CLASS_A_CAP class A operations.
"""

import os
import sys

import boto3
from botocore.exceptions import ClientError

BUCKET = os.environ["BUCKET_NAME"]
CAP = int(os.environ["CLASS_A_CAP"])
s3 = boto3.client("s3")

for i in range(CAP):
    s3.put_object(Bucket=BUCKET, Key=f"k{i}", Body=b"x")
try:
    s3.put_object(Bucket=BUCKET, Key="over", Body=b"x")
except ClientError as error:
    status = error.response["ResponseMetadata"]["HTTPStatusCode"]
    code = error.response["Error"]["Code"]
    message = error.response["Error"]["Message"]
    assert (status, code) == (403, "QuotaExceeded"), (status, code)
    assert "class A operations" in message and "objects.class_a_ops" in message, message
    print(f"refused: {code}: {message}")
else:
    sys.exit("the put over the class A cap was accepted")
# Reads are class B and still admitted.
assert s3.get_object(Bucket=BUCKET, Key="k0")["Body"].read() == b"x"
print("ok")
