"""Tests of clinkd.model."""
