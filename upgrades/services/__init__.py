"""The upgrade use cases, one module per area:

- ``speeds``: a line's wanted speed follows its grants (shared by all below)
- ``requests``: customers' upgrade requests and their grants
- ``blanket``: declaring and ending wide-scale disasters, confirmations, the revert job
- ``provisioning``: pushing wanted speeds to the satellite network
- ``notices``: what customers are told, one e-mail per organisation per event
"""
