"""gateway: an API gateway in Python that can stand in for Apache APISIX.

``__version__`` is this project's version; ``APISIX_VERSION`` is the APISIX release whose
contract we match, and what ``Server: APISIX/<version>`` announces by default (ADC reads it).
"""

__version__ = "0.1.0"
APISIX_VERSION = "3.18.0"
