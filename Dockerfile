# tagsync from this source tree as an AWS Lambda image (x86_64 or arm64):
#   docker build --platform linux/arm64 -t tagsync .
# The base image is multi-arch; pip installs wheels for the platform being built.
FROM public.ecr.aws/lambda/python:3.11
COPY pyproject.toml README.md /tmp/tagsync/
COPY src /tmp/tagsync/src
RUN pip install --no-cache-dir "/tmp/tagsync[aws,ssh]" --target "${LAMBDA_TASK_ROOT}" \
 && rm -rf /tmp/tagsync
# The config can also come from S3 or SSM: set TAGSYNC_CONFIG=s3://bucket/key or ssm:/name.
COPY examples/demo/tagsync.yaml ${LAMBDA_TASK_ROOT}/tagsync.yaml
CMD ["tagsync.aws.handler.handler"]
