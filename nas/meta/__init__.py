"""Meta-learning beyond architecture: activation functions as expression trees (PANGAEA), losses
as Taylor polynomials (TaylorGLO) and augmentation policies (PBA-style), each searched like an
architecture (``space.kind: activation | loss | augmentation``) and usable by every training
(``space.activation``, ``evaluation.loss``, ``evaluation.augmentation``)."""
