"""Imitation as a game: the reward moment (moment matching, IRL) next to BC and DAgger's Q moments.

``tabular.py`` solves the game exactly on small MDPs (no-regret reward player against value
iteration, MaxEnt IRL, AIRL's potential shaping): the known answers the learned, continuous
versions are checked against."""
