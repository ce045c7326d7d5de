# Defaults are a small, cheap cluster that runs the quickstart; set gpu_node_count for roberta-large
# (experiments/roberta-large-yahoo.yaml wants 4 GPUs per trial). Names must agree with infra/names.env
# (tests/infra checks the defaults).

variable "region" {
  description = "AWS region for the VPC, the EKS cluster and the bucket."
  type        = string
  default     = "us-east-1"
}

variable "availability_zone_suffixes" {
  description = "Zones of the region to use (one private, public and intra subnet each); at least two for EKS. Check that the GPU instance type is offered in them."
  type        = list(string)
  default     = ["a", "b", "c"]

  validation {
    condition     = length(var.availability_zone_suffixes) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "cluster_name" {
  description = "EKS cluster name; also names the VPC and the IAM roles."
  type        = string
  default     = "katib-suite"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version. A version past EKS standard support is billed at the extended-support rate ($0.60/h instead of $0.10/h): check `aws eks describe-cluster-versions` and stay on a supported one."
  type        = string
  default     = "1.34"
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; private, public and intra (control plane) subnets are carved from it per AZ."
  type        = string
  default     = "10.42.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = "Networks allowed to reach the public EKS API endpoint (kubectl, katib CLI). Narrow it to your own."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "cpu_instance_types" {
  description = "Instance types of the CPU node group (Katib, Training Operator, KServe controllers, CPU trials, predictors)."
  type        = list(string)
  default     = ["m6i.2xlarge"]
}

variable "cpu_node_count" {
  description = "Number of CPU nodes."
  type        = number
  default     = 2
}

variable "gpu_instance_types" {
  description = "Instance types of the tainted GPU node group (one NVIDIA A10G 24 GB per g5.2xlarge)."
  type        = list(string)
  default     = ["g5.2xlarge"]
}

variable "gpu_node_count" {
  description = "GPU nodes at creation (0: none billed). roberta-large-yahoo needs 4 per trial. EKS keeps later changes of the desired size out of Terraform: scale with `aws eks update-nodegroup-config`."
  type        = number
  default     = 0

  validation {
    condition     = var.gpu_node_count >= 0 && var.gpu_node_count <= 32
    error_message = "gpu_node_count must be between 0 and 32."
  }
}

variable "gpu_capacity_type" {
  description = "ON_DEMAND or SPOT for the GPU nodes (SPOT is cheaper; Katib retries trials a reclaim kills)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.gpu_capacity_type)
    error_message = "gpu_capacity_type must be one of [ON_DEMAND, SPOT]."
  }
}

variable "bucket_name" {
  description = "S3 bucket for trial checkpoints and promoted models. Bucket names are global: if this one is taken, pick yours and pass it to infra/render-experiment.sh --bucket."
  type        = string
  default     = "katib-suite-models"
}

variable "trials_prefix" {
  description = "Key prefix trials write checkpoints under (experiments' --output_dir=s3://BUCKET/<prefix>/<experiment>/<trial>)."
  type        = string
  default     = "katib"
}

variable "models_prefix" {
  description = "Key prefix promote-best writes model versions under and KServe reads from."
  type        = string
  default     = "models"
}

variable "trainer_read_prefixes" {
  description = "Further key prefixes trials may read (datasets or pretrained weights staged in the bucket)."
  type        = list(string)
  default     = ["datasets", "pretrained"]
}

variable "namespace" {
  description = "Kubernetes namespace of experiments and InferenceServices (infra/install.sh creates it)."
  type        = string
  default     = "kubeflow-user"
}

variable "trainer_service_account" {
  description = "ServiceAccount of the trial pods (serviceAccountName in the experiments' PyTorchJob template)."
  type        = string
  default     = "katib-suite-trainer"
}

variable "kserve_service_account" {
  description = "ServiceAccount of the KServe predictor (promote-best --deploy's default)."
  type        = string
  default     = "aws-sa"
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}
