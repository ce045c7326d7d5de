# A registry for the trainer image (infra/docker/build.sh --image <repository_url>:<tag> --push). EKS
# nodes pull from it with the ECR read-only policy the EKS module attaches to node roles.

resource "aws_ecr_repository" "trainer" {
  #checkov:skip=CKV_AWS_136:AES-256 (ECR's default) encrypts the layers at rest; a customer-managed KMS key adds cost and key grants for the node roles.
  name                 = "${var.cluster_name}/trainer"
  image_tag_mutability = "IMMUTABLE" # a tag a trial ran with always means the same image

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "trainer" {
  repository = aws_ecr_repository.trainer.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 20 newest trainer images; each is several GB."
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 20 }
      action       = { type = "expire" }
    }]
  })
}
