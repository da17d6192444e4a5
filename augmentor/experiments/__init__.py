"""The gain experiment: does augmentation help a classifier, and by how much (with intervals)?"""
