"""The OCPI 2.2.1 interface in the CPO role: what roaming partners (eMSPs, hubs, the national
access point) read from us and send to us. Wire formats live here; services see none of them."""
