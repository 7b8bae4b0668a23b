"""The study engine every runner drives: phases, training, measurement, ladder, probes."""
