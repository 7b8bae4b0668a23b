"""The TensorFlow runner: the shared study (harness_contract.study.pipeline) driven
through TensorFlow.

tfmot only accepts Keras 2 (tf_keras) models, and ``tf.keras`` resolves to Keras 3
unless TF_USE_LEGACY_KERAS is set before it is first touched; this package is
imported before any of its modules import TensorFlow, so it is set here.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
