from rest_framework.routers import SimpleRouter

from inventory.api import views

router = SimpleRouter()
router.register("machines", views.ClientMachineViewSet, basename="api-machine")

urlpatterns = router.urls
