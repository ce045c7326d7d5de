# EKS in a VPC with private subnets, from the public terraform-aws-modules (pinned): nodes live in private
# subnets and reach out through NAT; S3 traffic takes a gateway endpoint (no NAT charge per GB).

locals {
  # Named zones, not "the first three the API returns": the subnets never move when AWS adds a zone.
  azs = [for suffix in var.availability_zone_suffixes : "${var.region}${suffix}"]
}

module "vpc" {
  #checkov:skip=CKV_TF_1:A registry module pinned to an exact release version; registry releases are immutable (commit hashes apply to git sources).
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.19.0"

  name = var.cluster_name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 48)]
  intra_subnets   = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 52)]

  enable_nat_gateway   = true
  single_nat_gateway   = var.single_nat_gateway
  enable_dns_hostnames = true
  enable_dns_support   = true

  # Load balancers: public ones in public subnets, internal ones in private subnets.
  public_subnet_tags  = { "kubernetes.io/role/elb" = 1 }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = 1 }
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids
}

module "eks" {
  #checkov:skip=CKV_TF_1:A registry module pinned to an exact release version; registry releases are immutable (commit hashes apply to git sources).
  source  = "terraform-aws-modules/eks/aws"
  version = "20.33.1"

  cluster_name    = var.cluster_name
  cluster_version = var.kubernetes_version

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.intra_subnets

  cluster_endpoint_public_access       = true
  cluster_endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
  cluster_endpoint_private_access      = true

  # The identity running terraform can use kubectl on the new cluster (infra/install.sh needs it).
  enable_cluster_creator_admin_permissions = true
  # IRSA: the OIDC provider the trial and KServe roles trust (irsa.tf).
  enable_irsa = true

  cluster_addons = {
    coredns    = {}
    kube-proxy = {}
    vpc-cni    = { before_compute = true }
    # Katib's MySQL keeps its state on a PersistentVolume (gp3, infra/eks/storageclass.yaml).
    aws-ebs-csi-driver = { service_account_role_arn = aws_iam_role.ebs_csi.arn }
  }

  eks_managed_node_groups = {
    cpu = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.cpu_instance_types
      min_size       = 1
      max_size       = max(var.cpu_node_count, 1) + 2
      desired_size   = var.cpu_node_count
      labels         = { "katib-suite/pool" = "cpu" }
    }

    gpu = {
      # AL2023 with the NVIDIA driver and container toolkit; infra/install.sh adds the device plugin.
      ami_type       = "AL2023_x86_64_NVIDIA"
      instance_types = var.gpu_instance_types
      capacity_type  = var.gpu_capacity_type
      min_size       = 0
      max_size       = max(var.gpu_node_count, 4)
      desired_size   = var.gpu_node_count
      labels         = { "katib-suite/pool" = "gpu" }
      # Only pods that tolerate it (the GPU trials, NVIDIA's device plugin) land on these nodes.
      taints = {
        gpu = {
          key    = "nvidia.com/gpu"
          value  = "true"
          effect = "NO_SCHEDULE"
        }
      }
      block_device_mappings = {
        root = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size = 200 # the CUDA trainer image plus HF caches
            volume_type = "gp3"
            encrypted   = true
          }
        }
      }
    }
  }
}
