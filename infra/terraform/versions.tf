terraform {
  required_version = ">= 1.5.7"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The EKS module 20.x needs >= 5.83; 6.x changed arguments it uses.
      version = ">= 5.83, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "katib-suite", ManagedBy = "terraform" }, var.tags)
  }
}
