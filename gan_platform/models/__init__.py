"""Networks only: generators map (z, class) to samples, discriminators map (x, class) to scores.

Models know nothing of losses. Every generator is ``G(z, y=None) -> x`` and every
discriminator ``D(x, y=None) -> scores`` of shape (N,) (or (N / pack,) for a packed D).
"""
