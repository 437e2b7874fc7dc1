"""Process settings: endpoints, lake, model name, contract and policies, read once at an entry point.

    settings = load_settings()                        # CONTINUUM_* variables and .env, validated
    detect_drift(contract, reference, window, settings.drift)   # a function takes its section

`Settings` (ml/settings/env.py) is the flat view of the environment; its sections (ml/settings/sections.py)
are what is passed down, and can be built in code without any environment.
"""

from ml.settings.env import ENV_PREFIX, Settings, SettingsError, load_settings
from ml.settings.sections import (AlertSettings, BakeSettings, BatchSettings, DriftSettings, GateSettings, KafkaSettings,
                                  LakeSettings, LiveSettings, MonitorSettings, OffloadSettings, RegistrySettings,
                                  RetrainSettings, ServingSettings)

__all__ = ["ENV_PREFIX", "AlertSettings", "BakeSettings", "BatchSettings", "DriftSettings", "GateSettings", "KafkaSettings",
           "LakeSettings", "LiveSettings", "MonitorSettings", "OffloadSettings", "RegistrySettings",
           "RetrainSettings", "ServingSettings", "Settings", "SettingsError", "load_settings"]
