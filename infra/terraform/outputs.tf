output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "region" {
  description = "AWS region of the cluster and the bucket."
  value       = var.region
}

output "kubeconfig_command" {
  description = "Adds the cluster to ~/.kube/config and makes it the current context."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "bucket" {
  description = "S3 bucket for checkpoints (KATIB_SUITE_BUCKET) and promoted models."
  value       = aws_s3_bucket.models.bucket
}

output "trainer_role_arn" {
  description = "IRSA role of the trial pods' ServiceAccount."
  value       = aws_iam_role.trainer.arn
}

output "kserve_role_arn" {
  description = "IRSA role of the KServe predictor's ServiceAccount."
  value       = aws_iam_role.kserve.arn
}

output "install_command" {
  description = "Installs Katib, the Training Operator and KServe on the cluster (run from the repository root after kubeconfig_command)."
  value       = "bash infra/install.sh --target eks --context ${module.eks.cluster_arn} --region ${var.region} --bucket ${aws_s3_bucket.models.bucket} --trainer-role-arn ${aws_iam_role.trainer.arn} --kserve-role-arn ${aws_iam_role.kserve.arn}"
}

output "image_repository" {
  description = "ECR repository for the trainer image: KATIB_SUITE_IMAGE=<this>:<tag>."
  value       = aws_ecr_repository.trainer.repository_url
}
