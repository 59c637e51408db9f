"""Thin Lambda entry points, one module per operation; the logic lives in `connectors`."""
