from .configuration_most_popular import MostPopularConfig
from .modeling_most_popular import MostPopularModel

__all__ = ["MostPopularConfig", "MostPopularModel"]
