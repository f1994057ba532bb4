"""Helpers that exist only for the lessons (notebooks): plumbing, demonstrations, analysis."""
