# IRSA: pods of one ServiceAccount in one namespace assume one role through the cluster's OIDC provider,
# each with only the S3 access it needs. Trials: read/write their checkpoints, read staged inputs.
# KServe's storage initializer: read promoted models. Nothing else may assume them.

locals {
  oidc_subject_key  = "${module.eks.oidc_provider}:sub"
  oidc_audience_key = "${module.eks.oidc_provider}:aud"
}

data "aws_iam_policy_document" "assume_trainer" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = local.oidc_subject_key
      values   = ["system:serviceaccount:${var.namespace}:${var.trainer_service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = local.oidc_audience_key
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "assume_kserve" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = local.oidc_subject_key
      values   = ["system:serviceaccount:${var.namespace}:${var.kserve_service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = local.oidc_audience_key
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "trainer_s3" {
  # HeadBucket (the trainer's pre-flight) and listing a checkpoint directory: this bucket only.
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.models.arn]
  }
  statement {
    sid = "WriteCheckpoints"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.models.arn}/${var.trials_prefix}/*"]
  }
  statement {
    sid       = "ReadStagedInputs"
    actions   = ["s3:GetObject"]
    resources = [for p in var.trainer_read_prefixes : "${aws_s3_bucket.models.arn}/${p}/*"]
  }
}

data "aws_iam_policy_document" "kserve_s3" {
  statement {
    sid       = "ListModels"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.models.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.models_prefix}/*"]
    }
  }
  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.models.arn}/${var.models_prefix}/*"]
  }
}

resource "aws_iam_role" "trainer" {
  name               = "${var.cluster_name}-trainer"
  description        = "Katib trial pods (${var.namespace}/${var.trainer_service_account}): checkpoints in s3://${var.bucket_name}/${var.trials_prefix}/"
  assume_role_policy = data.aws_iam_policy_document.assume_trainer.json
}

resource "aws_iam_role_policy" "trainer_s3" {
  name   = "s3-checkpoints"
  role   = aws_iam_role.trainer.id
  policy = data.aws_iam_policy_document.trainer_s3.json
}

resource "aws_iam_role" "kserve" {
  name               = "${var.cluster_name}-kserve"
  description        = "KServe predictors (${var.namespace}/${var.kserve_service_account}): read s3://${var.bucket_name}/${var.models_prefix}/"
  assume_role_policy = data.aws_iam_policy_document.assume_kserve.json
}

resource "aws_iam_role_policy" "kserve_s3" {
  name   = "s3-models-read"
  role   = aws_iam_role.kserve.id
  policy = data.aws_iam_policy_document.kserve_s3.json
}

# The EBS CSI driver (Katib's MySQL volume) with AWS's managed policy, for its own ServiceAccount only.
data "aws_iam_policy_document" "assume_ebs_csi" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = local.oidc_subject_key
      values   = ["system:serviceaccount:kube-system:ebs-csi-controller-sa"]
    }
    condition {
      test     = "StringEquals"
      variable = local.oidc_audience_key
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ebs_csi" {
  name               = "${var.cluster_name}-ebs-csi"
  description        = "EBS CSI driver controller (kube-system/ebs-csi-controller-sa)"
  assume_role_policy = data.aws_iam_policy_document.assume_ebs_csi.json
}

resource "aws_iam_role_policy_attachment" "ebs_csi" {
  role       = aws_iam_role.ebs_csi.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
}
