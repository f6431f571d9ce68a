"""The wire protocol (package retire_cluster.v1): stubs generated from proto/ by gen_stubs.py."""
