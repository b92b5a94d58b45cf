"""Rasa custom actions: thin wrappers that query the segmentation layer, format and reply."""
