from nas.spaces.elastic import ElasticSpace

__all__ = ["ElasticSpace"]
