# The bucket for trial checkpoints (<trials_prefix>/) and promoted model versions (<models_prefix>/):
# versioned, encrypted at rest, never public, TLS only.

resource "aws_s3_bucket" "models" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; promoted versions are immutable and re-creatable from the experiment. Add a replica bucket for production DR.
  #checkov:skip=CKV_AWS_18:Access logging needs a second (log) bucket; CloudTrail data events are the better audit trail if needed.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events; promote-best writes the LATEST pointer itself.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256) encrypts at rest without a customer-managed KMS key's monthly cost and the kms:* grants every pod role would then need.
  bucket = var.bucket_name
}

resource "aws_s3_bucket_public_access_block" "models" {
  bucket                  = aws_s3_bucket.models.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "models" {
  bucket = aws_s3_bucket.models.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "models" {
  bucket = aws_s3_bucket.models.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "models" {
  bucket = aws_s3_bucket.models.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "models" {
  bucket = aws_s3_bucket.models.id

  # A killed trial (spot reclaim, early stop) can leave a multipart checkpoint upload behind: billed until aborted.
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }

  # Overwritten trial checkpoints keep old versions; drop them after a month. Promoted models are never
  # overwritten (promote-best writes new v<N>/ prefixes), so this costs them nothing.
  rule {
    id     = "expire-noncurrent-checkpoints"
    status = "Enabled"
    filter {
      prefix = "${var.trials_prefix}/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }

  depends_on = [aws_s3_bucket_versioning.models]
}

data "aws_iam_policy_document" "bucket_tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    resources = [aws_s3_bucket.models.arn, "${aws_s3_bucket.models.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "models" {
  bucket     = aws_s3_bucket.models.id
  policy     = data.aws_iam_policy_document.bucket_tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.models]
}
