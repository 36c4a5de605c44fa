"""Weak-factor networks (ResNet + GRU per dataset), the report's loss and the rolling trainer."""
