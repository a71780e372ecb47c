"""Training an SAE on a world's stream: the loop (:mod:`~synthsae.training.loop`) and its pickle-free
checkpoints (:mod:`~synthsae.training.checkpoints`)."""

from synthsae.training.loop import TrainHistory, TrainingDiverged, train, train_many

__all__ = ["TrainHistory", "TrainingDiverged", "train", "train_many"]
